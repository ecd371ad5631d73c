"""OpenSSH's server settings as sshd would read them: /etc/ssh/sshd_config and what it
``Include`` s, the first value of each keyword winning, global settings only (up to the first
``Match``)."""

from __future__ import annotations

from kiln.scan.context import ScanContext

SSHD_CONFIG = "/etc/ssh/sshd_config"
#: OpenSSH's compiled-in defaults (sshd_config(5), OpenSSH 9) of the settings the checks read.
DEFAULTS = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "permitemptypasswords": "no",
    "kbdinteractiveauthentication": "yes",
}
MAX_INCLUDES = 32


class SshdSettings(dict[str, tuple[str, str]]):
    """keyword (lower case) -> (value, "file:line")."""

    def default(self, keyword: str) -> str:
        return DEFAULTS.get(keyword.lower(), "")


def sshd_settings(ctx: ScanContext) -> SshdSettings | None:
    """None when the image has no OpenSSH server (no sshd_config and no sshd binary)."""
    if not ctx.exists(SSHD_CONFIG):
        return None if not ctx.exists("/usr/sbin/sshd") else SshdSettings()
    out = SshdSettings()
    _read(ctx, SSHD_CONFIG, out, [0])
    return out


def _read(ctx: ScanContext, path: str, out: SshdSettings, budget: list[int]) -> bool:
    """Add ``path``'s settings to ``out``; False once a Match block starts."""
    budget[0] += 1
    if budget[0] > MAX_INCLUDES:
        return True
    for file, n, line in ctx.config_lines(path):
        key, _, rest = line.replace("=", " ", 1).partition(" ")
        key, value = key.lower(), rest.strip()
        if key == "match":
            return False
        if key == "include":
            for pattern in value.split():
                for inc in ctx.resolve(path, pattern):
                    if not _read(ctx, inc, out, budget):
                        return False
            continue
        if key and key not in out:
            out[key] = (value.split()[0] if value else "", f"{file}:{n}")
    return True
