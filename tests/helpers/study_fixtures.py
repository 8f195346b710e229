"""Small datasets for the baseline and study tests (SLAKE's raw format, through tests.helpers.fixtures_data)."""

from tests.helpers.fixtures_data import slake_row

# A SLAKE folder for the modality=X-Ray shift. Images 1, 2, 4, 6, 8, 10 are CT/MRI (iid), 3, 5, 9 X-Ray (ood).
MODALITY = "Which modality is used to take this image?"
SLAKE_SMALL = {
    "train.json": [
        slake_row(1, 1, MODALITY, "CT", "OPEN", "Modality"),
        slake_row(2, 2, MODALITY, "MRI", "OPEN", "Modality"),
        slake_row(3, 4, MODALITY, "CT", "OPEN", "Modality"),
        slake_row(4, 1, "Does the picture contain liver?", "Yes", "CLOSED", "Organ"),
        slake_row(5, 2, "Does the picture contain brain?", "Yes", "CLOSED", "Organ"),
        slake_row(6, 4, "Does the picture contain heart?", "No", "CLOSED", "Organ"),
        slake_row(7, 1, "What is the largest organ in the picture?", "Liver", "OPEN", "Size"),
        slake_row(8, 2, "How big is the brain?", "Large", "OPEN", "Size"),
        slake_row(9, 3, MODALITY, "X-Ray", "OPEN", "Modality"),  # ood: joins the ood test split
        slake_row(10, 5, "Where is the heart?", "Center", "OPEN", "Position"),  # ood too
    ],
    "validate.json": [slake_row(20, 6, MODALITY, "CT", "OPEN", "Modality")],
    "test.json": [
        slake_row(30, 8, MODALITY, "CT", "OPEN", "Modality"),
        slake_row(31, 8, "Does the picture contain kidney?", "Yes", "CLOSED", "Organ"),
        slake_row(32, 10, "How large is the tumor?", "Small", "OPEN", "Size"),
        slake_row(33, 9, MODALITY, "X-Ray", "OPEN", "Modality"),
        slake_row(34, 9, "Where is the lung?", "Center", "OPEN", "Position"),
    ],
}
# Hand-computed from the iid train rows 1-8: question level for the modality question (CT 2, MRI 1);
# Organ/CLOSED Yes 2, No 1; Size/OPEN Liver 1, Large 1 (tie -> Large); OPEN overall CT 2 (Position unseen).
