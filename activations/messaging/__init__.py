"""Triggered messages: policies, the ledger, content (templates, links, coupons) and sending."""
