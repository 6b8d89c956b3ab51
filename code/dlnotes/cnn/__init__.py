"""Part 3, convolutional networks: convolution, padding and pooling, LeNet, modern CNNs, batch
normalisation, ResNet, transposed and dilated convolution, augmentation, fine-tuning.
"""
