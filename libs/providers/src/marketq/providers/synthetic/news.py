"""News articles, generated per (symbol, UTC hour) so that overlapping windows return the
same articles; the tone follows the day's price move."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from marketq.providers.base import NewsArticle
from marketq.providers.synthetic.companies import Companies
from marketq.providers.synthetic.dates import aware_utc
from marketq.providers.synthetic.draws import choice, hex_id, unit, units
from marketq.providers.synthetic.prices import PriceModel
from marketq.providers.synthetic.reference import check_symbol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_NEWS_SOURCES = (
    "Market Wire", "Finance Daily", "The Trading Desk", "Street Ledger", "Capital Times",
)  # fmt: skip
NEWS_TOPICS = (
    "cloud", "AI", "pricing", "supply chain", "international", "subscription", "margin",
    "product launch", "capital return", "cost efficiency",
)  # fmt: skip
_POSITIVE_HEADLINES = (
    "{name} shares rise as {topic} momentum builds",
    "Analysts upgrade {symbol} on stronger {topic} outlook",
    "{name} expands {topic} push, investors cheer",
    "{symbol} climbs after upbeat {topic} update",
)
_NEGATIVE_HEADLINES = (
    "{name} shares slip amid {topic} concerns",
    "{symbol} falls as investors weigh {topic} headwinds",
    "Analyst downgrades {name}, citing {topic} risks",
    "{name} under pressure after cautious {topic} commentary",
)
_NEUTRAL_HEADLINES = (
    "{name} to present at industry conference",
    "What to watch for {symbol} this week",
    "{name} outlines {topic} strategy at investor meeting",
    "{symbol} trades flat as market awaits {topic} data",
)


class NewsFeed:
    """``news``."""

    def __init__(self, model: PriceModel, companies: Companies) -> None:
        self.model = model
        self.seed = model.seed
        self.calendar = model.calendar
        self._companies = companies

    def _hour_articles(self, symbol: str, hour: int) -> list[NewsArticle]:
        """Articles of one UTC hour (``hour`` = hours since the epoch), newest first."""
        start = _EPOCH + timedelta(hours=hour)
        local = start.astimezone(self.calendar.tz)
        if local.weekday() >= 5:
            rate = 0.05
        elif 7 <= local.hour < 17:
            rate = 0.6
        else:
            rate = 0.12
        u = unit(self.seed, symbol, "news-count", hour)
        count, term = 0, math.exp(-rate)
        cdf = term
        while u > cdf and count < 6:  # inverse Poisson CDF
            count += 1
            term *= rate / count
            cdf += term
        if count == 0:
            return []
        profile = self._companies.company_profile(symbol)
        day = local.date()
        sd = self.model.params(symbol).sigma_d
        move = (
            self.model.level(symbol, day) - self.model.level(symbol, day - timedelta(days=1))
        ) / sd
        out: list[NewsArticle] = []
        for i in range(count):
            article_id = "syn-" + hex_id(self.seed, symbol, hour, i)
            u_sec, u_tone = units(self.seed, symbol, "news", hour, i)
            published = start + timedelta(seconds=int(u_sec * 3600))
            sentiment = math.tanh(0.6 * move + 0.8 * (2.0 * u_tone - 1.0))
            if sentiment > 0.2:
                templates = _POSITIVE_HEADLINES
            elif sentiment < -0.2:
                templates = _NEGATIVE_HEADLINES
            else:
                templates = _NEUTRAL_HEADLINES
            topic = choice(NEWS_TOPICS, self.seed, symbol, "topic", hour, i)
            headline = choice(templates, self.seed, symbol, "headline", hour, i).format(
                name=profile.name, symbol=symbol, topic=topic
            )
            source = choice(_NEWS_SOURCES, self.seed, symbol, "source", hour, i)
            slug = re.sub(r"[^a-z0-9]+", "-", headline.lower()).strip("-")
            out.append(
                NewsArticle(
                    article_id=article_id,
                    symbol=symbol,
                    published_at=published,
                    headline=headline,
                    summary=(
                        f"{profile.name} ({symbol}) was in focus as market participants "
                        f"discussed its {topic} developments. {source} reviews what it "
                        f"means for the {profile.industry.lower()} business and the stock."
                    ),
                    publisher=source,
                    url=f"https://news.marketq.example/{symbol.lower()}/"
                    f"{published:%Y/%m/%d}/{slug}-{article_id[4:12]}",
                    sentiment=round(max(-1.0, min(1.0, sentiment)), 3),
                )
            )
        out.sort(key=lambda a: (a.published_at, a.article_id), reverse=True)
        return out

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        """Articles published in [since, until), newest first, at most ``limit``."""
        check_symbol(symbol)
        lo = aware_utc(since, "since")
        hi = aware_utc(until, "until")
        if limit < 0:
            raise ValueError("limit must be >= 0")
        out: list[NewsArticle] = []
        if lo >= hi or limit == 0:
            return out
        first = (lo - _EPOCH) // timedelta(hours=1)
        last = (hi - _EPOCH - timedelta(microseconds=1)) // timedelta(hours=1)
        for hour in range(last, first - 1, -1):
            for article in self._hour_articles(symbol, hour):
                if lo <= article.published_at < hi:
                    out.append(article)
            if len(out) >= limit:
                break
        return out[:limit]
