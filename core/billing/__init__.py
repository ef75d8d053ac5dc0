"""Billing: the money rules of ``docs/service.md`` (Subscriptions, Invoices, Revenue figures).

Pure functions over plain values, no I/O and no store: a tenant's dated subscription
history and the spans it bills in a local month (:mod:`core.billing.subscriptions`), the
month's invoice from those spans (:mod:`core.billing.invoice`), and the revenue figures over
month-end MRR: movements, retention, costs, margin, valuation and the what-if
(:mod:`core.billing.revenue`). Money is an ``int`` of minor units, rates are ``Decimal`` or
``Fraction``, never a float; each figure is per currency. ``docs/billing.md`` explains them.
"""
