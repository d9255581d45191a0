import CLI
import Foundation

exit(GPT2DDP.main(arguments: Array(CommandLine.arguments.dropFirst())))
