"""The core every part of newsradar builds on: settings, the Article model, batches, URLs, dates,
text helpers and HTTP retries. It imports no area (crawlers, enrich, index, alerts) and nothing above.
"""

__version__ = "0.1.0"
