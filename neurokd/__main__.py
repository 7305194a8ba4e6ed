"""``python -m neurokd`` (and ``torchrun -m neurokd``) runs the command line."""

from neurokd.cli import main

if __name__ == "__main__":
    main()
