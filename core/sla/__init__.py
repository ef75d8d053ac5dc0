"""Service levels: maintenance windows, a month's attainment and its credit.

Pure rules over plain values, unit-tested without LMDB; the tables that keep windows and
closed months live in ``core/store``.
"""
