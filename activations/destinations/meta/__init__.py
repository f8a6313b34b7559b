"""Meta (Facebook): one home for its clients on the Graph API.

- `audiences.py`: users of one Custom Audience (type `meta`), hashed, added and removed.
- `conversions.py`: conversions sent server-side to one pixel (dataset) with the Conversions API
  (type `meta_conversions`), hashed, sent once.
- `catalog.py`: products of one Commerce catalog with the Catalog Batch API (type `meta_catalog`), kept a
  mirror of the warehouse's catalog, confirmed only once Meta finished each batch.
- `graph.py`: the Graph API's error body and throttling signal, which both read.
"""
