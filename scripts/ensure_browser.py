"""Installs Debian's chromium for the browser tests when it is missing.

Playwright drives this system browser through `executable_path`; it never downloads
a browser build of its own, so the tests also run on machines without internet
access beyond the Debian mirror.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def _apt_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo", "-n"]
    raise SystemExit(
        f"{CHROMIUM} is missing and this user cannot install it: "
        "run `sudo apt-get install chromium` once, then `make test` again."
    )


def main() -> int:
    if os.path.exists(CHROMIUM):
        return 0
    if not shutil.which("apt-get"):
        sys.stderr.write(
            f"{CHROMIUM} is missing and apt-get is not available: install Chromium so that "
            f"{CHROMIUM} exists, then run `make test` again.\n"
        )
        return 2
    prefix = _apt_prefix()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
