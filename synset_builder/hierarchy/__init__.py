"""The hierarchy stage: which synsets to collect (WordNet, targets, queries, the tree view)."""
