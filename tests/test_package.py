import subprocess
import sys

import sodinn


def test_public_names_resolve():
    for name in sodinn.__all__:
        assert getattr(sodinn, name) is not None, name
    assert sodinn.__version__


def test_import_is_light():
    code = (
        "import sys, sodinn; "
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'vip_hci', 'astropy') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
