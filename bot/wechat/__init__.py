"""WeChat Official Account (公众号) channel: a thin adapter over bot.conversation.

    python -m bot.wechat     # serves WeChat's callback URL (WECHAT_* settings, README)

`server` verifies and decrypts WeChat's callbacks and starts each turn in the background;
`api` sends the answers through the customer-service message API with a cached access token;
`rendering` turns replies into WeChat messages (byte-bounded texts, menus, numbered choices).
"""
