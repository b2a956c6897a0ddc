#!/usr/bin/env python3
"""Softmax regression (multinomial logistic regression) on scikit-learn's 8×8 digits, trained with
the gradient from nativesoftmax.cross_entropy.

The model is logits = X·W + b. nativesoftmax.cross_entropy(logits, labels, return_grad=True)
returns the mean loss and its gradient with respect to the logits, o − y per row divided by the
batch size (docs/derivation.md); the chain rule through the linear layer
is then plain numpy: dW = Xᵀ·grad, db = Σ_rows grad. Mini-batch gradient descent with momentum and
a small L2 penalty on W.

The data (1797 images, 10 classes) is bundled with scikit-learn, so nothing is downloaded. Prints
the instruction-set path, the loss every few epochs and the held-out accuracy; exits with status 1
if that accuracy is below 0.95.

Run from the repository root:  /usr/bin/python3 bindings/python/examples/train_digits.py
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nativesoftmax  # noqa: E402
import digits  # noqa: E402  (beside this script)

SEED = 0
EPOCHS = 60
BATCH = 64
LEARNING_RATE = 0.1
MOMENTUM = 0.9
L2 = 1e-3
REQUIRED_ACCURACY = 0.95


def main():
    start = time.perf_counter()
    x_train, x_test, y_train, y_test, classes = digits.load(SEED)
    n, features = x_train.shape

    rng = np.random.default_rng(SEED)
    w = np.zeros((features, classes), np.float32)
    b = np.zeros(classes, np.float32)
    vw = np.zeros_like(w)
    vb = np.zeros_like(b)
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(n)
        for first in range(0, n, BATCH):
            idx = order[first:first + BATCH]
            xb = x_train[idx]
            logits = xb @ w + b
            _, grad = nativesoftmax.cross_entropy(logits, y_train[idx], return_grad=True)
            gw = xb.T @ grad + L2 * w
            gb = grad.sum(axis=0)
            vw = MOMENTUM * vw - LEARNING_RATE * gw
            vb = MOMENTUM * vb - LEARNING_RATE * gb
            w += vw
            b += vb
        if epoch == 1 or epoch % 10 == 0:
            loss = nativesoftmax.cross_entropy(x_train @ w + b, y_train)
            train_acc = np.mean(np.argmax(x_train @ w + b, axis=1) == y_train)
            print("epoch %3d  train loss %.4f  train accuracy %.4f" % (epoch, loss, train_acc))

    probabilities = nativesoftmax.softmax(x_test @ w + b)
    test_loss = nativesoftmax.cross_entropy(x_test @ w + b, y_test)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y_test))
    print("held-out loss: %.4f" % test_loss)
    print("held-out accuracy: %.4f" % accuracy)
    print("time: %.2f s" % (time.perf_counter() - start))
    if accuracy < REQUIRED_ACCURACY:
        print("FAIL: held-out accuracy %.4f is below %.2f" % (accuracy, REQUIRED_ACCURACY),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
