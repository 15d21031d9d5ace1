"""newsradar: monitoring German, English and Chinese coverage of AI releases, bans and restrictions."""

__version__ = "0.1.0"
