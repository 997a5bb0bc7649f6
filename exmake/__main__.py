"""`python -m exmake` runs the command line."""

from exmake.cli import main

if __name__ == "__main__":
    main()
