"""The tournament simulator: the demo's cast through the services' own scoring and allocation code,
with each model's true skill known, to measure where a payout policy sends the money."""

from crowdquant.simulation.figures import Figures, KindShare, figures
from crowdquant.simulation.tournament import SIZES, ModelOutcome, Simulation, SimulationConfig, simulate

__all__ = [
    "SIZES",
    "Figures",
    "KindShare",
    "ModelOutcome",
    "Simulation",
    "SimulationConfig",
    "figures",
    "simulate",
]
