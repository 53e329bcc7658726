"""The terminal chat (no Telegram token): same conversation code, buttons as numbers."""
from __future__ import annotations

import os
import subprocess
import sys

from stack.settings import ROOT


def test_local_chat_answers_and_presses_numbered_buttons(stack):
    env = {**os.environ, "RASA_URL": stack.rasa_url, "RASA_TOKEN": stack.settings.rasa_token,
           "DATABASE_URL": stack.settings.database_url}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=120,
        input="2\nSCORE有哪些模块\n/help\n/whatever\n/quit\n",
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[1] English" in out and "[2] 中文" in out  # the welcome's language buttons
    assert "好的，我会用中文回答。" in out  # "2" pressed the 中文 button
    assert "工作场所合作" in out and "职业安全与健康" in out
    assert "/forget – 删除我的数据" in out  # help now in Chinese
    assert "没有这个命令" in out
    assert "Traceback" not in result.stderr
