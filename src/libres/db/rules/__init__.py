"""Recurring availability: rules that make allocations and extend themselves.

The scheduler offers them (``add_rule``, ``rules``, ``extend_rules``,
``add_rule_exception``, ``change_rule``, ``stop_rule``, ``delete_rule``);
``libres rules extend`` runs the extension for every resource from cron.
"""

from __future__ import annotations

from libres.db.rules.model import AllocationRule

__all__ = ('AllocationRule',)
