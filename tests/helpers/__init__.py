"""What the tests share: the box in a real Home Assistant, virtual audio, logs."""
