"""The 10-class ImageNet subsets used by MTT (imagenette, imagewoof, ...), from an ImageFolder-like layout.

Wnids are MTT's ImageNet class indices (utils.Config) mapped to their synsets. Layout:
`<data_dir>/{train,val}/<wnid>/*.JPEG` (full ImageNet or a prepared subset; `<data_dir>/<subset>/` also
works); val is used as the test split. Images are resized to `resolution` x `resolution` (default 128),
as MTT does with Resize((128, 128)).
"""

from __future__ import annotations

from pathlib import Path

from satm_cl.data._common import finish, require_data_dir, to_labels
from satm_cl.data._images import list_images, read_images
from satm_cl.data.base import DATASETS, STATUS, DatasetOptions, DatasetSplits
from satm_cl.errors import SatmError

DEFAULT_RESOLUTION = 128
HINT = "ImageNet-style train/ and val/ folders of <wnid>/*.JPEG"

# subset -> ((wnid, class name), ...) in MTT's label order
SUBSETS: dict[str, tuple[tuple[str, str], ...]] = {
    "imagenette": (
        ("n01440764", "tench"),
        ("n02102040", "English springer"),
        ("n02979186", "cassette player"),
        ("n03000684", "chain saw"),
        ("n03028079", "church"),
        ("n03394916", "French horn"),
        ("n03417042", "garbage truck"),
        ("n03425413", "gas pump"),
        ("n03445777", "golf ball"),
        ("n03888257", "parachute"),
    ),
    "imagewoof": (
        ("n02096294", "Australian terrier"),
        ("n02093754", "Border terrier"),
        ("n02111889", "Samoyed"),
        ("n02088364", "beagle"),
        ("n02086240", "Shih-Tzu"),
        ("n02089973", "English foxhound"),
        ("n02087394", "Rhodesian ridgeback"),
        ("n02115641", "dingo"),
        ("n02099601", "golden retriever"),
        ("n02105641", "Old English sheepdog"),
    ),
    "imagemeow": (
        ("n02123045", "tabby cat"),
        ("n02123159", "tiger cat"),
        ("n02123394", "Persian cat"),
        ("n02123597", "Siamese cat"),
        ("n02124075", "Egyptian cat"),
        ("n02129165", "lion"),
        ("n02129604", "tiger"),
        ("n02128925", "jaguar"),
        ("n02128757", "snow leopard"),
        ("n02127052", "lynx"),
    ),
    "imagesquawk": (
        ("n01806143", "peacock"),
        ("n02007558", "flamingo"),
        ("n01818515", "macaw"),
        ("n02051845", "pelican"),
        ("n02056570", "king penguin"),
        ("n01614925", "bald eagle"),
        ("n01843383", "toucan"),
        ("n01518878", "ostrich"),
        ("n01860187", "black swan"),
        ("n01819313", "sulphur-crested cockatoo"),
    ),
    "imagefruit": (
        ("n07753275", "pineapple"),
        ("n07753592", "banana"),
        ("n07745940", "strawberry"),
        ("n07747607", "orange"),
        ("n07749582", "lemon"),
        ("n07768694", "pomegranate"),
        ("n07753113", "fig"),
        ("n07720875", "bell pepper"),
        ("n07718472", "cucumber"),
        ("n07742313", "Granny Smith"),
    ),
    "imageyellow": (
        ("n02206856", "bee"),
        ("n12057211", "yellow lady's slipper"),
        ("n07753592", "banana"),
        ("n07749582", "lemon"),
        ("n12144580", "corn"),
        ("n04146614", "school bus"),
        ("n03530642", "honeycomb"),
        ("n02129165", "lion"),
        ("n01773157", "black and gold garden spider"),
        ("n01531178", "goldfinch"),
    ),
}


def find_root(subset: str, data_dir: Path | None) -> Path | None:
    """data_dir or data_dir/<subset> when it holds train/ and val/ folders with the subset's first wnid."""
    if data_dir is None:
        return None
    base = Path(data_dir).expanduser()
    first = SUBSETS[subset][0][0]
    for root in (base, base / subset):
        if (root / "train" / first).is_dir() and (root / "val" / first).is_dir():
            return root
    return None


def _gather(root: Path, split: str, wnids: list[str]) -> tuple[list[Path], list[int]]:
    paths: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        files = list_images(root / split / wnid)
        paths += files
        labels += [label] * len(files)
    return paths, labels


def load_subset(subset: str, options: DatasetOptions) -> DatasetSplits:
    """Load one subset's 10 wnids from train/ (train) and val/ (test), resized and stacked."""
    root = find_root(subset, require_data_dir(subset, options, HINT))
    if root is None:
        raise SatmError(f"dataset {subset} not found under {options.data_dir}; pass --data-dir DIR ({HINT})")
    wnids = [w for w, _ in SUBSETS[subset]]
    train_paths, train_labels = _gather(root, "train", wnids)
    test_paths, test_labels = _gather(root, "val", wnids)
    present = set(train_labels)
    missing = [w for i, w in enumerate(wnids) if i not in present]
    if missing:
        raise SatmError(f"dataset {subset} under {root} lacks train images for {', '.join(missing)}")
    res = options.resolution or DEFAULT_RESOLUTION
    return finish(
        subset,
        read_images(train_paths, res),
        to_labels(train_labels),
        read_images(test_paths, res),
        to_labels(test_labels),
        [name for _, name in SUBSETS[subset]],
        options,
    )


def _register(subset: str) -> None:
    def loader(options: DatasetOptions) -> DatasetSplits:
        return load_subset(subset, options)

    def status(options: DatasetOptions) -> str:
        return "ready" if find_root(subset, options.data_dir) is not None else f"needs --data-dir ({HINT})"

    loader.__doc__ = f"The {subset} ImageNet subset (10 classes) as 3xRxR images in [0,1]."
    DATASETS.register(subset)(loader)
    STATUS[subset] = status


for _subset in SUBSETS:
    _register(_subset)
