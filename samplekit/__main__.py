"""``python -m samplekit ...`` (and ``torchrun -m samplekit ...``): the samplekit command line."""

from samplekit.cli import main

if __name__ == "__main__":
    main()
