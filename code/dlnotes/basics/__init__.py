"""Part 1, basics: ML basics, linear and softmax regression, multilayer perceptrons.
"""
