"""Money as a person reads it: integer minor units of an ISO 4217 currency, written out
with that currency's decimals. Worked out on integers: no float ever holds money."""

from __future__ import annotations

#: ISO 4217 currencies whose minor unit is not a hundredth (the rest have two decimals)
MINOR_DIGITS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


def money_text(amount: int, currency: str) -> str:
    """Integer minor units with the currency: ``USD 1,234.56``, ``USD -47.70``, ``JPY
    1,200``."""
    if type(amount) is not int:
        raise TypeError(f"an amount is an int of minor units, never {amount!r}")
    digits = MINOR_DIGITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**digits)
    fraction = f".{part:0{digits}d}" if digits else ""
    return f"{currency} {sign}{whole:,}{fraction}"


def major_units(amount: int, currency: str) -> float:
    """An amount in major units, for a chart's axis only (the figures shown beside it are
    :func:`money_text`'s, exact)."""
    return amount / 10 ** MINOR_DIGITS.get(currency, 2)
