"""A simulated customer base that answers what Attiva sends, with the answers known in advance.

`attiva simulate --days N` (simulator/run.py) moves the pipeline's one clock forward a day at a
time; the simulated customers (simulator/world.py) buy on their own and because of the messages
they received, through the same landing files as real data (simulator/days.py), and what the
world planted is written beside the data, so the measured uplift can be checked against it.
Like the generator and the sandbox it sits outside the product, which never imports it.
"""
