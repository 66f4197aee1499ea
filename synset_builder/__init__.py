"""Build ImageNet-style image datasets for any category hierarchy.

The pipeline is hierarchy -> crawl -> clean -> vote -> consensus -> export -> train,
one module per stage, all reading and writing one database.
"""

__version__ = "0.1.0"
