"""Salesforce: its Contacts client (contacts.py, a sync destination) and its Task channel (tasks.py,
a task for the sales team per message)."""
