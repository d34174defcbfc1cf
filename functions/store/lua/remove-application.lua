--[[
  removeApplication: UnregisterApplication (FINISHED) and the UI's kill (KILLED).
  ARGV[4] appId  ARGV[5] final state
  Returns 1 if the app was active and is now removed, 0 otherwise (idempotent).
]]
if removeApplication(ARGV[4], ARGV[5]) then return 1 end
return 0
