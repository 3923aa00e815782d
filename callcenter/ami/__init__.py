"""The AMI side: codec, gateway (wrapping panoramisk), trace readers and the replay server for tests."""
