"""WeChat channel settings, from the environment only (README: "Settings")."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


@dataclass(frozen=True)
class WeChatSettings:
    token: str = field(default_factory=lambda: _env("WECHAT_TOKEN"))  # the callback's Token
    app_id: str = field(default_factory=lambda: _env("WECHAT_APP_ID"))
    app_secret: str = field(default_factory=lambda: _env("WECHAT_APP_SECRET"))
    # EncodingAESKey (43 characters): set for safe or compatible mode; unset: plain mode only.
    aes_key: str = field(default_factory=lambda: _env("WECHAT_AES_KEY"))
    api_base_url: str = field(default_factory=lambda: _env("WECHAT_API_BASE_URL", "https://api.weixin.qq.com"))
    listen: str = field(default_factory=lambda: _env("WECHAT_LISTEN", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("WECHAT_PORT", "8081")))
    path: str = field(default_factory=lambda: _env("WECHAT_PATH", "wechat"))
    # menu: buttons as tappable msgmenu items (numbers work too); numbers: numbered text only.
    buttons: str = field(default_factory=lambda: _env("WECHAT_BUTTONS", "menu"))

    @property
    def enabled(self) -> bool:
        """The channel is on when the account's token, app id and secret are set."""
        return bool(self.token and self.app_id and self.app_secret)

    def missing(self) -> list[str]:
        return [name for name, value in (("WECHAT_TOKEN", self.token), ("WECHAT_APP_ID", self.app_id),
                                         ("WECHAT_APP_SECRET", self.app_secret)) if not value]
