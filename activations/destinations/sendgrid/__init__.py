"""SendGrid: its Marketing Contacts client (contacts.py, a sync destination) and its Mail Send
channel (mail.py, triggered email)."""
