"""Twilio: the Programmable Messaging Messages API as an SMS channel (messages.py), and the
signature Twilio puts on the status callbacks and inbound messages it posts back (signature.py)."""
