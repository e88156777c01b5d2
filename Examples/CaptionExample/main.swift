import Captioning
let captioner = try Captioner(modelFolder: Captioner.defaultModelFolder())
let result = try captioner.caption(imagePath: "samples/scene7.jpg")
print(result.caption, result.logProb)
