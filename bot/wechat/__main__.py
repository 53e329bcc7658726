from bot.wechat.app import main

main()
