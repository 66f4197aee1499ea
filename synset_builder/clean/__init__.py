"""The clean stage: quality checks, perceptual hashes, near-duplicate groups and conflicts."""
