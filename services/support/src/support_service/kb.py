"""The assistant's knowledge base: Markdown articles in ``kb/{ru,en}`` and their retrieval.

An article is a Markdown file with a YAML front matter (``id``, ``title``, ``keywords``,
optional ``diagnose: true`` for the article whose questions the take diagnosis answers).
Retrieval is BM25+ (``rank_bm25``) over Snowball stems (``PyStemmer``), per language: the
title counts three times, the keywords twice, the body once. A query word that no article
contains is corrected to the nearest word of the knowledge base (``rapidfuzz``, Damerau-Levenshtein
similarity >= ``FUZZY_CUTOFF``) before stemming, so a typo still finds its article.

Confidence is the share of the question's weight (each term's IDF; a word no article knows
weighs as much as an average word) that the best article contains. Below the threshold the
question goes to a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import Stemmer
import yaml
from rank_bm25 import BM25Plus
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

Lang = Literal["ru", "en"]
LANGS: tuple[Lang, ...] = ("ru", "en")
KB_DIR = Path(__file__).with_name("kb")
FUZZY_CUTOFF = 0.75
TITLE_WEIGHT, KEYWORD_WEIGHT = 3, 2

_WORD = re.compile(r"[a-zа-яё0-9]+", re.IGNORECASE)
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)



def _stop_words(lang: str) -> frozenset[str]:
    """Words that carry no topic (a question's glue): ``kb/stopwords/<lang>.txt``."""
    text = (KB_DIR / "stopwords" / f"{lang}.txt").read_text(encoding="utf-8")
    return frozenset(w.strip().replace("ё", "е") for w in text.splitlines()
                     if w.strip() and not w.startswith("#"))


STOP_WORDS: dict[Lang, frozenset[str]] = {lang: _stop_words(lang) for lang in LANGS}


@dataclass(frozen=True)
class Article:
    id: str
    lang: Lang
    title: str
    body: str
    keywords: str = ""
    diagnose: bool = False


@dataclass(frozen=True)
class Hit:
    article: Article
    score: float
    confidence: float
    runner_up: str | None = None


def detect_lang(text: str) -> Lang:
    """Russian when at least a third of the letters are Cyrillic."""
    cyr, lat = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    return "ru" if cyr and cyr * 2 >= lat else "en"


def _split_front_matter(text: str) -> tuple[dict[str, object], str]:
    if not text.startswith("---"):
        raise ValueError("an article starts with a YAML front matter between --- lines")
    _, head, body = text.split("---", 2)
    meta = yaml.safe_load(head)
    if not isinstance(meta, dict):
        raise ValueError("the front matter is a mapping")
    return meta, body.strip()


def load_articles(root: Path = KB_DIR) -> list[Article]:
    out: list[Article] = []
    for lang in LANGS:
        for path in sorted((root / lang).glob("*.md")):
            meta, body = _split_front_matter(path.read_text(encoding="utf-8"))
            out.append(Article(id=str(meta["id"]), lang=lang, title=str(meta["title"]),
                               body=body, keywords=str(meta.get("keywords", "")),
                               diagnose=bool(meta.get("diagnose", False))))
    return out


_CONTRACTIONS = ((re.compile(r"\b(can)'?t\b", re.IGNORECASE), "cannot"),
                 (re.compile(r"n['’]t\b", re.IGNORECASE), " not"))


def words(text: str) -> list[str]:
    for pattern, full in _CONTRACTIONS:
        text = pattern.sub(full, text)
    return [m.group(0).lower().replace("ё", "е") for m in _WORD.finditer(text)]


@dataclass
class _Index:
    lang: Lang
    articles: list[Article]
    stemmer: Stemmer.Stemmer
    bm25: BM25Plus = field(init=False)
    vocab: list[str] = field(init=False)
    stems: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        stop = STOP_WORDS[self.lang]
        corpus: list[list[str]] = []
        surface: set[str] = set()
        for a in self.articles:
            parts = ([a.title] * TITLE_WEIGHT + [a.keywords] * KEYWORD_WEIGHT + [a.body])
            ws = [w for w in words(" ".join(parts)) if w not in stop]
            surface.update(ws)
            corpus.append(self.stemmer.stemWords(ws))
        self.bm25 = BM25Plus(corpus)
        self.vocab = sorted(surface | stop)
        self.stems = frozenset(s for doc in corpus for s in doc)

    def terms(self, question: str) -> tuple[list[str], int]:
        """The question's stems found in the knowledge base (typos corrected) and the count
        of its words that stay unknown."""
        known: list[str] = []
        unknown = 0
        for w in words(question):
            if w in STOP_WORDS[self.lang]:
                continue
            stem = self.stemmer.stemWord(w)
            if stem not in self.stems and len(w) >= 4:
                near = process.extractOne(w, self.vocab, score_cutoff=FUZZY_CUTOFF,
                                          scorer=DamerauLevenshtein.normalized_similarity)
                if near is not None:
                    if near[0] in STOP_WORDS[self.lang]:
                        continue
                    stem = self.stemmer.stemWord(near[0])
            if stem in self.stems:
                known.append(stem)
            else:
                unknown += 1
        return known, unknown

    def search(self, question: str) -> Hit | None:
        known, unknown = self.terms(question)
        if not known:
            return None
        # BM25+ gives every article ``delta * idf`` per term, matched or not: subtract it so
        # that 0 means "no term of the question".
        base = self.bm25.delta * sum(self.bm25.idf.get(t, 0.0) for t in known)
        scores = [float(s) - base for s in self.bm25.get_scores(known)]
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        best = order[0]
        if scores[best] <= 1e-9:
            return None
        idf = self.bm25.idf
        unknown_idf = sum(idf.values()) / len(idf)
        doc_terms = set(self.bm25.doc_freqs[best])
        weight = [max(idf.get(t, 0.0), 0.0) for t in known]
        found = sum(wt for t, wt in zip(known, weight, strict=True) if t in doc_terms)
        coverage = found / (sum(weight) + unknown * unknown_idf or 1.0)
        runner = self.articles[order[1]].id if len(order) > 1 else None
        return Hit(self.articles[best], round(scores[best], 4), round(coverage, 4), runner)


class KnowledgeBase:
    def __init__(self, articles: list[Article]) -> None:
        self.articles = articles
        self.indexes = {lang: _Index(lang, [a for a in articles if a.lang == lang],
                                     Stemmer.Stemmer("russian" if lang == "ru" else "english"))
                        for lang in LANGS}

    def article(self, article_id: str, lang: Lang) -> Article | None:
        return next((a for a in self.articles if a.id == article_id and a.lang == lang), None)

    def search(self, question: str, lang: Lang | None = None) -> Hit | None:
        return self.indexes[lang or detect_lang(question)].search(question)


@cache
def knowledge_base() -> KnowledgeBase:
    """The knowledge base shipped with the service (loaded once)."""
    return KnowledgeBase(load_articles())
