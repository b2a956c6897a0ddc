#!/usr/bin/env python3
"""A small PyTorch MLP on scikit-learn's 8×8 digits, trained through
nativesoftmax.torch.CrossEntropyLoss: the loss and its gradient with respect to the logits come
from the library (as an autograd Function); torch differentiates the rest of the network.

Model: 64 → 64 (ReLU) → 10, Adam, mini-batches of 64, label smoothing 0.05. The data (1797
images, 10 classes) is bundled with scikit-learn, so nothing is downloaded. Prints the
instruction-set path, the loss every few epochs and the held-out accuracy; exits with status 1
if that accuracy is below 0.95.

Run from the repository root:  /usr/bin/python3 bindings/python/examples/train_digits_torch.py
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import digits  # noqa: E402  (beside this script)
import nativesoftmax.torch as nt  # noqa: E402

SEED = 0
EPOCHS = 30
BATCH = 64
LEARNING_RATE = 1e-2
HIDDEN = 64
REQUIRED_ACCURACY = 0.95


def main():
    start = time.perf_counter()
    torch.manual_seed(SEED)
    x_train, x_test, y_train, y_test, classes = (
        torch.from_numpy(a) if not isinstance(a, int) else a for a in digits.load(SEED))
    n, features = x_train.shape

    model = torch.nn.Sequential(torch.nn.Linear(features, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, classes))
    loss_fn = nt.CrossEntropyLoss(label_smoothing=0.05)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for epoch in range(1, EPOCHS + 1):
        model.train()
        for idx in torch.randperm(n).split(BATCH):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        if epoch == 1 or epoch % 10 == 0:
            with torch.no_grad():
                logits = model(x_train)
                train_loss = float(loss_fn(logits, y_train))
                train_acc = float((logits.argmax(dim=1) == y_train).float().mean())
            print("epoch %3d  train loss %.4f  train accuracy %.4f" % (epoch, train_loss,
                                                                     train_acc))

    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        test_loss = float(loss_fn(logits, y_test))
        probabilities = nt.softmax(logits, dim=1)
    accuracy = float((probabilities.argmax(dim=1) == y_test).float().mean())
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
