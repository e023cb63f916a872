"""Print each Lambda zip's size and its binary's, and fail when a zip is over the limit.

Usage: python3 scripts/lambda_sizes.py LIMIT_BYTES FUNCTION... (run by `make build-lambda`
after `cargo lambda build --output-format zip`, which writes target/lambda/<f>/bootstrap.zip).
"""

import sys
import zipfile
from pathlib import Path


def main() -> int:
    limit = int(sys.argv[1])
    over = []
    for function in sys.argv[2:]:
        path = Path("target/lambda") / function / "bootstrap.zip"
        zipped = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            binary = sum(entry.file_size for entry in archive.infolist())
        print(f"{function:<20} zip {zipped:>10,} bytes ({zipped / 1e6:.2f} MB)   binary {binary:>11,} bytes ({binary / 1e6:.2f} MB)")
        if zipped >= limit:
            over.append(function)
    if over:
        print(f"over the {limit:,}-byte limit: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
