"""Part 5, applications: object detection, style transfer, GANs, word embeddings, text
classification and graph networks.
"""
