"""``python -m unetlab.export``."""

from unetlab.export.command import main

main()
