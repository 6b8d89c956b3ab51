"""Part 2, training well: model selection, weight decay, dropout, numerical stability, critical
points, optimisation, PyTorch essentials, the house-price project.
"""
