"""Message rendering speed: one typical template (abandoned_cart: subject, HTML and text,
two cart lines, tracked links, the layout) rendered for many customers on one core.

    .venv/bin/python benchmarks/render_templates.py --renders 20000

Target (triggered messages issue): >= 5,000 renders/s.
"""

from __future__ import annotations

import argparse
import time

from activations.messaging.links import DEV_UNSUBSCRIBE_SECRET, unsubscribe_base_url, unsubscribe_url
from activations.messaging.templates import Templates, message_context, sample_context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=20_000)
    parser.add_argument("--template", default="abandoned_cart")
    args = parser.parse_args()
    sample = sample_context(campaign=args.template)
    # A context per customer, built outside the timed loop as the sender builds it from warehouse rows.
    contexts = [
        message_context(
            customer={**sample["customer"], "customer_id": f"C{i:07d}", "first_name": f"Nome{i % 1000}"},
            trigger=sample["trigger"], campaign=args.template, step=1,
            recommendations=sample["recommendations"], coupon=sample["coupon"],
            unsubscribe_url=unsubscribe_url(unsubscribe_base_url(), f"C{i:07d}", args.template,
                                            DEV_UNSUBSCRIBE_SECRET))
        for i in range(min(args.renders, 5_000))
    ]
    templates = Templates()
    started = time.perf_counter()
    templates.render(args.template, contexts[0])
    first = time.perf_counter() - started
    started = time.perf_counter()
    size = 0
    for i in range(args.renders):
        message = templates.render(args.template, contexts[i % len(contexts)])
        size += len(message.html) + len(message.text)
    elapsed = time.perf_counter() - started
    print(f"template {args.template}: first render (compile) {first * 1000:.1f} ms")
    print(f"{args.renders:,} renders in {elapsed:.2f} s: {args.renders / elapsed:,.0f} renders/s "
          f"({size / args.renders / 1024:.1f} KiB a message, subject + HTML + text)")


if __name__ == "__main__":
    main()
