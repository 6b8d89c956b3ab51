"""Part 4, sequences and attention: sequence models, text, language models, recurrent networks,
encoder-decoders and beam search, attention, the Transformer and pretraining.
"""
