"""The export stage: accepted images into stable splits and the layouts trainers read.

Also the datasheet written beside every export, and ``synset verify`` that re-checks one.
"""
