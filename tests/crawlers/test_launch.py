"""The crawl subprocess's entry point refuses malformed arguments before Scrapy starts."""

from __future__ import annotations

import pytest

from crawlers.launch import main


@pytest.mark.parametrize(("flag", "value"), [("-a", "sources_file"), ("-s", "=1"), ("-a", "")])
def test_malformed_pairs_are_refused_with_the_flag_named(flag: str, value: str) -> None:
    with pytest.raises(SystemExit, match=f"invalid {flag} value"):
        main(["news", flag, value])
