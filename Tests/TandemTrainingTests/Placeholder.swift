import Testing
import TandemTraining
