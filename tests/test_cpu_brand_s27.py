"""descent.cpu.get_capabilities()["cpu_name"]: cpuinfo's shortened brand string after the vendor's
name, as PyTorch prints it (session 27: on an Intel host descent printed /proc/cpuinfo's raw
"Intel(R) Xeon(R) Processor" where PyTorch prints "Intel Xeon")."""

import pytest

from descent.cpu._brand import normalize_brand, package_name

INTEL, AMD = "GenuineIntel", "AuthenticAMD"


@pytest.mark.parametrize(
    ("vendor", "raw", "name"),
    [
        (INTEL, "Intel(R) Xeon(R) Processor", "Intel Xeon"),
        (INTEL, "Intel(R) Xeon(R) Platinum 8488C", "Intel Xeon Platinum 8488C"),
        (INTEL, "Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz", "Intel Core i5-8250U"),
        (INTEL, "Intel(R) Xeon(R) CPU           X3210  @ 2.13GHz", "Intel Xeon X3210"),
        (INTEL, "Intel(R) Core(TM) i7 CPU X 990  @ 3.47GHz", "Intel Core i7 990X"),
        (INTEL, "Intel(R) Xeon(R) CPU E3-1230 V2 @ 3.30GHz", "Intel Xeon E3-1230 v2"),
        (INTEL, "Intel(R) Pentium(R) III CPU family 1266MHz", "Intel Pentium III 1266MHz"),
        (INTEL, "Genuine Intel(R) CPU @ 2.13GHz", ""),  # nothing but a frequency
        (AMD, "AMD EPYC 7B13", "AMD EPYC 7B13"),
        (AMD, "AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763 64-Core"),
        (AMD, "AMD Ryzen Threadripper 1950X 16-Core Processor", "AMD Ryzen Threadripper 1950X"),
        (AMD, "AMD FX(tm)-8150 Eight-Core Processor", "AMD FX-8150"),
        (AMD, "AMD Athlon(tm) 64 X2 Dual Core Processor 3800+", "AMD Athlon 64 X2 3800+"),
        (AMD, "AMD A10-7850K APU with Radeon(TM) R7 Graphics", "AMD A10-7850K"),
        (AMD, "AMD-K6tm w/ multimedia extensions", "AMD K6"),
        (AMD, "AMD Eng Sample, ZD302046W4K43_36/30/20_2/8_A", ""),
        (AMD, "AMD Processor model unknown", ""),
        ("SomeNewVendor", "Fancy(TM) Chip 9000 Processor", "Fancy Chip 9000"),
    ],
)
def test_package_name_follows_cpuinfo(vendor, raw, name):
    assert package_name(vendor, raw) == name


def test_normalize_keeps_model_words_that_are_not_erased():
    assert normalize_brand("Intel(R) Atom(TM) CPU Z2760  @ 1.80GHz") == "Atom Z2760"
    assert normalize_brand("AMD Engineering Processor 42") == "Engineering 42"


def test_cpu_name_equals_torch_on_this_host():
    torch = pytest.importorskip("torch")
    import descent

    t = torch.cpu.get_capabilities().get("cpu_name")
    if t is None:
        pytest.skip("torch prints no cpu_name on this architecture")
    assert descent.cpu.get_capabilities()["cpu_name"] == t
