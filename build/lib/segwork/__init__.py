"""segwork: customer segmentation from a table of transactions.

Read and validate a shop's export, clean it with a reconciling ledger, score RFM and name
segments, cluster the same customers, compare, profile, and report.
"""

__version__ = "0.1.0"
