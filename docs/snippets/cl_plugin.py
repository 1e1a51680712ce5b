import torch
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.supervised import Naive
from fyi_apps.tasks.continual import make_memory

# 10 images per class from a synthetic-set file (fyi distill ... -o my_set.safetensors); or distil each
# experience's new classes online: make_memory("dm+fyi", ..., info=fyi_apps.data.dataset_info("cifar10"))
memory = make_memory("file:my_set.safetensors", ipc=10, num_classes=10)
replay = ReplayPlugin(mem_size=memory.max_size, storage_policy=memory)
strategy = Naive(model=model, optimizer=optimizer, criterion=torch.nn.CrossEntropyLoss(),
                 train_mb_size=64, plugins=[replay])  # your strategy, your other plugins
for experience in benchmark.train_stream:
    strategy.train(experience)
    results = strategy.eval(benchmark.test_stream)
