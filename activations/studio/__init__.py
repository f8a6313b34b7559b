"""`attiva studio`: the marketer's console, a small web app on 127.0.0.1 that reads the warehouse.

users.py keeps who may sign in (argon2 hashes in studio_users.yml), sessions.py signs them in and
guards every form against cross-site posts, reading.py opens the warehouse for the few milliseconds
a page needs (and writes as briefly for a pause or a test send), audiences.py, customers.py and
campaigns.py are what the pages show, privacy.py what a viewer may
see of a person, app.py the routes and command.py the CLI flags.
"""
