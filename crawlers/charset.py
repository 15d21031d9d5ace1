"""Decode raw page bytes into text without trusting the page's own charset claim.

Chinese news sites still serve GBK/GB2312/Big5 pages, often with no declaration or with a
declaration copied from a template that lies. A wrong guess produces mojibake that poisons every
later stage (language ID, dedup, keyword alerts), so each candidate decoding is *validated* instead
of being taken at its word: strict UTF-8 first (random legacy bytes almost never form long valid
UTF-8), then the declared charsets, then a CJK plausibility check and finally charset_normalizer.
"""

from __future__ import annotations

import codecs
import re

from newsradar.text import HAN

__all__ = ["decode_html", "normalise_charset"]

#: Only the head is sniffed for <meta charset>; browsers stop at 1024 bytes, templates are sloppier.
_SNIFF_BYTES = 16_384
#: Validation and detection look at a sample: enough for statistics, cheap on multi-MB pages.
_SAMPLE_BYTES = 262_144

_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]{2,40})""", re.I)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]{0,200}?encoding\s*=\s*["']([a-zA-Z0-9_\-.]{2,40})["']""", re.I)

# Legacy labels mapped to the codec that decodes every page carrying them: GBK and GB2312 pages in
# the wild contain GB18030-only characters, and "latin-1" pages are really windows-1252 (WHATWG).
_ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "euc-cn": "gb18030",
    "hz-gb-2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode": "utf-8",
    "x-sjis": "shift_jis",
}

_SINGLE_BYTE = {"cp1252", "latin-1", "iso8859-15", "cp1250", "cp1251", "koi8-r", "iso8859-2"}

# ~600 of the most frequent Hanzi (simplified and traditional forms). Random byte pairs decoded with
# the wrong CJK codec land anywhere in the ~20k-character table, real text concentrates here.
_COMMON_HANZI = frozenset(
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出也得里后自会家可下而过天去能对小多然于"
    "心学么之都好看起发当没成只如事把还用第样道想作种开美总从无情己面最女但现前些所同日手又行意动方期"
    "它头经长儿回位分爱老因很给名法间斯知世什两次使身者被高已亲其进此话常与活正感见明问力理尔点文几定"
    "本公特做外孩相西果走将月十实向声车全信重三机工物气每并别真打太新比才便夫再书部水像眼等体却加电主"
    "界门利海受听表德少克代员许先口由死安写性马光白或住难望教命花结乐色更拉东神记处让母父应直字场平"
    "报友关放至张认接告入笑内英军候民岁往何度山觉路带万男边风解叫任金快原吃妈变通师立象数四失满战远格"
    "士音轻目条呢病始达深完今提求清王化空业思切怎非找片罗钱吗语元喜曾离飞科言干流欢约各即指合反题必"
    "该论交终林请医晚制球决传画保读运及则房早院量苦火布品近坐产答星精视五连司巴奇管类未朋且婚台夜青"
    "北队久乎越观落尽形影红爸百令周吧识步希亚术留市半热送兴造谈容极随演收首根讲整式取照办强石古华拿"
    "计您装似足双妻尼转诉米称丽客南领节衣站黑刻统断福城故历惊脸选包紧争另建维绝树系伤示愿持千史谁准联"
    "妇纪基买志静阿诗独复痛消社算义竟确酒需单治卡幸兰念举仅钟怕共毛句息功官待究跟穿室易游程号居考突皮"
    "哪费倒价图具刚脑永歌响商礼细专黄块脚味灵改据般破引食仍存众注笔甚某沉血备习校默务土微娘须试怀料调"
    "广苏显赛查密议底列富梦错座参八除跑亮假印设线温虽掉京初养香停际致阳纸李纳验助激够严证帝饭忘趣支"
    "這個們來為國說時會過對學麼發當沒樣種開總從現動頭經長兒愛間進話與感見問點幾實聲車電書東處讓應"
    "報關張認風記萬邊變師戰遠氣條錢語歡約論題傳畫讀運則檢號產視連類際區體義場業組織務網經濟發展"
    "年日月时间报道记者新闻中国北京上海公司市场经济发展政府工作企业技术网络服务管理部门国家社会"
    "年新聞記者臺灣香港公司市場經濟發展政府工作企業技術網絡服務管理部門國家社會"
)


def normalise_charset(label: str | None) -> str | None:
    """Map a declared label to a Python codec, widening legacy subsets to their supersets."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    return _ALIASES.get(name, name)


def _sniff_declared(head: bytes) -> list[str]:
    found: list[str] = []
    for rx in (_META_CHARSET, _XML_ENCODING):
        for m in rx.finditer(head):
            enc = normalise_charset(m.group(1).decode("ascii", "ignore"))
            if enc and enc not in found:
                found.append(enc)
    return found


def _decode_tolerant(body: bytes, encoding: str) -> str | None:
    """Decode, accepting a handful of broken sequences (truncated pages, one stray byte).

    Strict decoding would reject a correct charset because of a single corrupt byte; anything above
    0.1 % replacement characters means the charset is wrong, not the page.
    """
    try:
        return body.decode(encoding)
    except UnicodeDecodeError:
        pass
    except LookupError:
        return None
    text = body.decode(encoding, errors="replace")
    bad = text.count("\ufffd") - body.count("\xef\xbf\xbd".encode("latin-1"))
    if bad <= max(2, len(text) // 1000):
        return text
    return None


def _hanzi_score(text: str) -> tuple[int, float]:
    """Number of CJK ideographs and the share of them that are common characters."""
    cjk = HAN.findall(text)
    if not cjk:
        return 0, 0.0
    common = sum(1 for c in cjk if c in _COMMON_HANZI)
    return len(cjk), common / len(cjk)


def _plausible_cjk(text: str) -> bool:
    n, share = _hanzi_score(text)
    return n < 20 or share >= 0.25


def _best_cjk(sample: bytes) -> str | None:
    """Pick GB18030 or Big5 when the bytes decode as one of them into *real* Chinese."""
    best: tuple[float, str] | None = None
    for enc in ("gb18030", "big5hkscs"):
        text = _decode_tolerant(sample, enc)
        if text is None:
            continue
        n, share = _hanzi_score(text)
        if n >= 20 and share >= 0.25 and (best is None or share > best[0]):
            best = (share, enc)
    return best[1] if best else None


def _detect(sample: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - charset_normalizer ships with requests/scrapy
        return None
    match = from_bytes(sample).best()
    if match is None:
        return None
    enc = normalise_charset(match.encoding)
    # Detectors pick arbitrarily among Latin code pages that decode German umlauts identically;
    # report windows-1252, the web's de facto default, whenever it yields the same text.
    if enc and enc != "cp1252" and _decode_tolerant(sample, "cp1252") == _decode_tolerant(sample, enc):
        return "cp1252"
    return enc


def decode_html(body: bytes, declared: str | None = None) -> tuple[str, str]:
    """Return ``(text, encoding)`` for raw page bytes; never raises.

    ``declared`` is the transport's claim (HTTP Content-Type); it is tried first among the claims
    but, like the in-page <meta charset>, only accepted when the bytes agree with it.
    """
    if not body:
        return "", normalise_charset(declared) or "utf-8"
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            try:
                return body.decode(enc), "utf-8" if enc == "utf-8-sig" else enc
            except UnicodeDecodeError:
                break
    sample = body[:_SAMPLE_BYTES]
    claims: list[str] = []
    for claim in [normalise_charset(declared), *_sniff_declared(body[:_SNIFF_BYTES])]:
        if claim and claim not in claims:
            claims.append(claim)

    if body.isascii():
        return body.decode("ascii"), claims[0] if claims and claims[0] not in {"utf-16"} else "utf-8"

    # Long non-ASCII runs that are valid UTF-8 are practically never a legacy encoding.
    if (claims and claims[0] == "utf-8") or _decode_tolerant(sample, "utf-8") is not None:
        text = _decode_tolerant(body, "utf-8")
        if text is not None:
            return text, "utf-8"

    cjk_guess: str | None = None
    for enc in claims:
        if enc in {"utf-8", "utf-16"}:
            continue
        text = _decode_tolerant(sample, enc)
        if text is None:
            continue
        if enc in _SINGLE_BYTE:
            # A single-byte charset decodes anything: make sure the bytes are not really Chinese.
            cjk_guess = cjk_guess or _best_cjk(sample)
            if cjk_guess:
                break
        elif not _plausible_cjk(text):
            continue
        full = _decode_tolerant(body, enc)
        if full is not None:
            return full, enc

    for enc in filter(None, [cjk_guess or _best_cjk(sample), _detect(sample)]):
        full = _decode_tolerant(body, enc)
        if full is not None:
            return full, enc
    return body.decode("cp1252", errors="replace"), "cp1252"
