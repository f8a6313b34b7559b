"""Web listening (issue 19): brand and product mentions from feeds, with language and sentiment."""
