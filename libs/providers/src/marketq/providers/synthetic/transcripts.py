"""Generated earnings-call transcripts: prepared remarks and a seeded Q&A."""

from __future__ import annotations

from datetime import date

from marketq.providers.base import CompanyProfile
from marketq.providers.synthetic.draws import choice, rng
from marketq.providers.synthetic.financials import Quarter
from marketq.providers.synthetic.news import NEWS_TOPICS

_ANALYST_FIRMS = (
    "Northbridge Securities", "Harbor Point Capital", "Summit Research", "Lakeshore Partners",
    "Granite Peak Advisors", "Bluewater Equity Research",
)  # fmt: skip
_FIRST_NAMES = ("Alex", "Jordan", "Morgan", "Taylor", "Casey", "Riley", "Jamie", "Avery")
_LAST_NAMES = ("Chen", "Patel", "Garcia", "Okafor", "Novak", "Schmidt", "Rossi", "Tanaka")
_QA = (
    (
        "Could you unpack the drivers of gross margin this quarter and how you see them trending?",
        "Thanks for the question. Mix was favorable and the team executed well on cost "
        "discipline, which supported margins in {period}. We expect some normalization, but "
        "the structural improvements should hold.",
    ),
    (
        "How should we think about operating expense growth relative to revenue next year?",
        "We plan to grow operating expenses more slowly than revenue. We are reallocating "
        "toward {topic} and engineering, and funding much of it from efficiencies elsewhere.",
    ),
    (
        "Can you talk about demand trends by region and anything you saw late in the quarter?",
        "Demand was healthy across our core regions. We saw a modest pickup late in the "
        "quarter, and the order book entering next quarter is consistent with our outlook.",
    ),
    (
        "What are your capital allocation priorities between buybacks, dividends and investment?",
        "Our balance sheet gives us room to keep investing while returning capital. We will "
        "stay consistent and measured, and we will update you as the year unfolds.",
    ),
    (
        "How much of the {topic} opportunity is reflected in your current guidance?",
        "Only the part we can already see in signed business. {Topic} is a multi-year "
        "opportunity and we are pacing spend to the returns we see, while keeping flexibility.",
    ),
    (
        "Could you give more color on pricing and competitive dynamics in {topic}?",
        "Pricing has been rational. Customers choose us for reliability and total cost, and "
        "our early results in {topic} make us confident we can hold our position.",
    ),
)


def _name(seed: int, *parts: object) -> str:
    first = choice(_FIRST_NAMES, seed, "first", *parts)
    return f"{first} {choice(_LAST_NAMES, seed, 'last', *parts)}"


def transcript(
    seed: int,
    symbol: str,
    period: str,
    qi: int,
    call_date: date,
    *,
    profile: CompanyProfile,
    quarter: Quarter,
    year_ago: Quarter,
    eps_estimate: float,
) -> str:
    """The call of ``period`` (quarter index ``qi``): prepared remarks quoting the
    quarter's figures, then analysts' questions in a seeded order."""
    f = quarter
    ceo, cfo = _name(seed, symbol, "ceo"), _name(seed, symbol, "cfo")
    topic = choice(NEWS_TOPICS, seed, symbol, "call-topic", qi)
    growth = 100.0 * (f.revenue / year_ago.revenue - 1.0)
    fmt = {"period": period, "topic": topic, "Topic": topic[0].upper() + topic[1:]}
    paragraphs = [
        f"Operator: Good day, and welcome to the {profile.name} ({symbol}) {period} earnings "
        f"conference call, held on {call_date:%B %d, %Y}. All participants are in a "
        "listen-only mode. After the prepared remarks there will be a question-and-answer "
        "session. Please note this event is being recorded.",
        f"{ceo}, Chief Executive Officer: Thank you, operator, and thanks to everyone for "
        f"joining us. {period} was a {'strong' if growth > 0 else 'challenging'} quarter for "
        f"{profile.name.rstrip('.')}. Revenue was ${f.revenue / 1e6:,.1f} million, "
        f"{'up' if growth >= 0 else 'down'} {abs(growth):.1f}% from a year ago. We continued "
        f"to invest in {topic} while staying disciplined on costs, and I want to thank our "
        "teams for their execution.",
        f"{cfo}, Chief Financial Officer: Thanks. Net income for {period} was "
        f"${f.net_income / 1e6:,.1f} million, or ${f.eps:.2f} per diluted share, compared with "
        f"a consensus estimate of ${eps_estimate:.2f}. We ended the quarter with total assets "
        f"of ${f.total_assets / 1e9:,.2f} billion and {f.shares / 1e6:,.0f} million shares "
        "outstanding. Our outlook assumes a stable macro environment and consistent execution "
        f"in the {profile.industry.lower()} business.",
        f"{cfo}, Chief Financial Officer: Turning to the details. Gross margin benefited from "
        "mix and from the efficiency programs we started last year, partly offset by "
        "continued investment in engineering and go-to-market capacity. Operating cash flow "
        "remained healthy, and we returned capital to shareholders in line with our "
        f"framework. For the coming quarter we expect revenue growth broadly consistent with "
        f"{period}, with {topic} remaining the largest contributor to incremental growth.",
        f"{ceo}, Chief Executive Officer: Before we open the line, let me step back. Our "
        f"strategy in {topic} is working, our customers are engaging more deeply, and our "
        "pipeline is the strongest it has been. We will keep investing where we see durable "
        "returns and stay disciplined everywhere else. With that, operator, let's take "
        "questions.",
    ]
    order = rng(seed, symbol, "qa", qi).permutation(len(_QA)).tolist()
    for i, k in enumerate(order):
        analyst = _name(seed, symbol, "analyst", qi, i)
        firm = choice(_ANALYST_FIRMS, seed, symbol, "firm", qi, i)
        question, answer = _QA[k]
        speaker = ceo if i % 2 == 0 else cfo
        paragraphs.append(f"{analyst}, {firm}: {question.format(**fmt)}")
        paragraphs.append(f"{speaker}: {answer.format(**fmt)}")
    paragraphs.append(
        f"Operator: That concludes the question-and-answer session and today's {symbol} "
        f"{period} call. Thank you for your participation; you may now disconnect."
    )
    return "\n\n".join(paragraphs)
